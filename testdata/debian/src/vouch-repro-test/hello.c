/* A tiny program for vouch's rebuild tests. */
#include <stdio.h>

int main(void)
{
    puts("vouch reproducible test package");
    return 0;
}
