# Empty dependencies file for test_shadow_doc.
# This may be replaced when dependencies are built.
