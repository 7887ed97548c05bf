# Empty compiler generated dependencies file for sedge_deploy.
# This may be replaced when dependencies are built.
