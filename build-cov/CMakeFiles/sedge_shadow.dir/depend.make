# Empty dependencies file for sedge_shadow.
# This may be replaced when dependencies are built.
