# Empty compiler generated dependencies file for test_function_probe.
# This may be replaced when dependencies are built.
