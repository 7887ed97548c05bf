file(REMOVE_RECURSE
  "../examples/counter"
  "../examples/counter.pdb"
  "CMakeFiles/example_counter.dir/c/counter.c.o"
  "CMakeFiles/example_counter.dir/c/counter.c.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/example_counter.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
