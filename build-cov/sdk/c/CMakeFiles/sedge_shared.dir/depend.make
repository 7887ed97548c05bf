# Empty dependencies file for sedge_shared.
# This may be replaced when dependencies are built.
