file(REMOVE_RECURSE
  "CMakeFiles/sedged.dir/src/core/main.c.o"
  "CMakeFiles/sedged.dir/src/core/main.c.o.d"
  "sedged"
  "sedged.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedged.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
