# Empty dependencies file for sedged.
# This may be replaced when dependencies are built.
