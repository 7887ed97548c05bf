# CMake generated Testfile for 
# Source directory: /work/main/examples/functions
# Build directory: /work/main/build-cov/examples-build
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
