# Empty compiler generated dependencies file for sedge_base.
# This may be replaced when dependencies are built.
