# Empty compiler generated dependencies file for sedge_router.
# This may be replaced when dependencies are built.
