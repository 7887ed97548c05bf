# Empty compiler generated dependencies file for sedge-sandbox.
# This may be replaced when dependencies are built.
