# CMake generated Testfile for 
# Source directory: /work/main/sdk/c
# Build directory: /work/main/build-cov/sdk/c
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
subdirs("../../examples-build")
