file(REMOVE_RECURSE
  "../examples/echo"
  "../examples/echo.pdb"
  "CMakeFiles/example_echo.dir/c/echo.c.o"
  "CMakeFiles/example_echo.dir/c/echo.c.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/example_echo.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
