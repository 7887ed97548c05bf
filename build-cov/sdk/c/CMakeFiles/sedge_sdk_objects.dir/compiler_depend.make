# Empty compiler generated dependencies file for sedge_sdk_objects.
# This may be replaced when dependencies are built.
