# Empty compiler generated dependencies file for seccomp_gen.
# This may be replaced when dependencies are built.
