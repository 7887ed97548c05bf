# Empty compiler generated dependencies file for example_counter.
# This may be replaced when dependencies are built.
