# Empty compiler generated dependencies file for sedge_core.
# This may be replaced when dependencies are built.
