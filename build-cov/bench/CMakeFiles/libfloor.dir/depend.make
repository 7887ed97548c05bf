# Empty dependencies file for libfloor.
# This may be replaced when dependencies are built.
