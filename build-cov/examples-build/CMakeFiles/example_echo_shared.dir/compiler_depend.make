# Empty compiler generated dependencies file for example_echo_shared.
# This may be replaced when dependencies are built.
