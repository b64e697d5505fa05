"""What a user hands a run besides the model and the checkpoints: the corpus (`corpus`, `packing`),
the files and folders named on the command line (`input_files`), and the release registry
(`releases`, `releases.json`)."""
