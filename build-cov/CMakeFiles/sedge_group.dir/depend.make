# Empty dependencies file for sedge_group.
# This may be replaced when dependencies are built.
