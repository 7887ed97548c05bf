# Empty dependencies file for sedgectl.
# This may be replaced when dependencies are built.
