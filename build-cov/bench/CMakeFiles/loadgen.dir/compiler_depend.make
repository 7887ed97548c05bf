# Empty compiler generated dependencies file for loadgen.
# This may be replaced when dependencies are built.
