file(REMOVE_RECURSE
  "CMakeFiles/test_shadow_doc.dir/test_shadow_doc.c.o"
  "CMakeFiles/test_shadow_doc.dir/test_shadow_doc.c.o.d"
  "test_shadow_doc"
  "test_shadow_doc.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_shadow_doc.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
