# Empty compiler generated dependencies file for sedge_static.
# This may be replaced when dependencies are built.
