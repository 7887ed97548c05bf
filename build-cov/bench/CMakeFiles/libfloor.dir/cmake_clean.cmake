file(REMOVE_RECURSE
  "CMakeFiles/libfloor.dir/libfloor.c.o"
  "CMakeFiles/libfloor.dir/libfloor.c.o.d"
  "libfloor"
  "libfloor.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/libfloor.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
