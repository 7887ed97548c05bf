file(REMOVE_RECURSE
  "../examples/behave"
  "../examples/behave.pdb"
  "CMakeFiles/example_behave.dir/c/behave.c.o"
  "CMakeFiles/example_behave.dir/c/behave.c.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/example_behave.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
