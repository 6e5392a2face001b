module retap.dev/go-layouts-probe

go 1.18
