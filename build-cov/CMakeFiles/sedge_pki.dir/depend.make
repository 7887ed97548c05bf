# Empty dependencies file for sedge_pki.
# This may be replaced when dependencies are built.
