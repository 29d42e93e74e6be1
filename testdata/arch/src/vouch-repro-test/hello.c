#include <stdio.h>

int main(void)
{
	puts("hello from vouch's Arch test package");
	return 0;
}
