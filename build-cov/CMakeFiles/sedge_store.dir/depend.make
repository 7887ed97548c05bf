# Empty dependencies file for sedge_store.
# This may be replaced when dependencies are built.
