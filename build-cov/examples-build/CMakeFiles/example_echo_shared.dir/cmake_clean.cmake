file(REMOVE_RECURSE
  "../examples/echo-shared"
  "../examples/echo-shared.pdb"
  "CMakeFiles/example_echo_shared.dir/c/echo.c.o"
  "CMakeFiles/example_echo_shared.dir/c/echo.c.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/example_echo_shared.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
