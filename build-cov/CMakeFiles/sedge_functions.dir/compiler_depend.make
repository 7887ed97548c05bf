# Empty compiler generated dependencies file for sedge_functions.
# This may be replaced when dependencies are built.
