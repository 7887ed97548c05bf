# Empty dependencies file for sedge_broker.
# This may be replaced when dependencies are built.
