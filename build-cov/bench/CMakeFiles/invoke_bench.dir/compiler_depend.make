# Empty compiler generated dependencies file for invoke_bench.
# This may be replaced when dependencies are built.
