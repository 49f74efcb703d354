"""The AAM dataset format: ARFF annotations, track discovery, frame labels."""
