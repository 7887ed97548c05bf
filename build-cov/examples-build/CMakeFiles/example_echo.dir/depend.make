# Empty dependencies file for example_echo.
# This may be replaced when dependencies are built.
