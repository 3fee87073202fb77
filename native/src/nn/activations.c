/* Out-of-line form of the fast tanh of nn.h (for callers that want a function pointer or a test). */
#include "nn.h"

float fl_tanhf(float x) { return fl_tanh_fast(x); }
