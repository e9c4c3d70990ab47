// Force-included in clang builds (CMakeLists.txt): Debian's ITK 5.2 generated its compiler
// feature header for GCC alone and stops clang with "Unsupported compiler". Clang implements
// every feature that header tests for GCC 12, so it is read once as GCC 12 would see it; the
// include guard keeps ITK's own includes of it from running it again.
#pragma push_macro("__clang__")
#pragma push_macro("__GNUC__")
#pragma push_macro("__GNUC_MINOR__")
#undef __clang__
#undef __GNUC__
#undef __GNUC_MINOR__
#define __GNUC__ 12
#define __GNUC_MINOR__ 2
#include <itk_compiler_detection.h>
#pragma pop_macro("__GNUC_MINOR__")
#pragma pop_macro("__GNUC__")
#pragma pop_macro("__clang__")
