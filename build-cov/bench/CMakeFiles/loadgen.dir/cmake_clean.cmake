file(REMOVE_RECURSE
  "CMakeFiles/loadgen.dir/loadgen.c.o"
  "CMakeFiles/loadgen.dir/loadgen.c.o.d"
  "loadgen"
  "loadgen.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/loadgen.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
