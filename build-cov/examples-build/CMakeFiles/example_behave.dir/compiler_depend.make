# Empty compiler generated dependencies file for example_behave.
# This may be replaced when dependencies are built.
