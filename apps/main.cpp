// placeholder until the command lands
#include <cstdio>
int main() { std::puts("normlab"); return 0; }
