# Empty dependencies file for sedge_routing.
# This may be replaced when dependencies are built.
