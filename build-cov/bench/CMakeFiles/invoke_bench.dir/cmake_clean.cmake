file(REMOVE_RECURSE
  "CMakeFiles/invoke_bench.dir/invoke_bench.c.o"
  "CMakeFiles/invoke_bench.dir/invoke_bench.c.o.d"
  "invoke_bench"
  "invoke_bench.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/invoke_bench.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
