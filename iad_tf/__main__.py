from iad_tf.cli.main import cli

if __name__ == "__main__":
    cli(prog_name="iad-tf")
