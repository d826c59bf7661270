// stb's implementation, compiled in for device (cross) builds: Debian's libstb.so exists for the
// host architecture only, its headers serve every target.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
