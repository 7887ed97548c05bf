# Empty dependencies file for sedge_uplink.
# This may be replaced when dependencies are built.
