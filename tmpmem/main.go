package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kioskd/kioskd/recognizer"
)

func hwm() string {
	b, _ := os.ReadFile("/proc/self/status")
	s := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM") || strings.HasPrefix(l, "VmRSS") {
			s += strings.Join(strings.Fields(l), " ") + "  "
		}
	}
	return s
}

func main() {
	enc := recognizer.NewEncoder(recognizer.EncoderConfig{ModelsDir: "/work/main/var/models", PoolSize: 2, DetectThreads: 2})
	if err := enc.Open(); err != nil {
		panic(err)
	}
	fmt.Println("open:", hwm())
	files, _ := filepath.Glob("/work/shared/testdata/people/*/*")
	var imgs [][]byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		imgs = append(imgs, b)
	}
	for round := 0; round < 4; round++ {
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(imgs)*3; i += 2 {
					enc.Encode(context.Background(), imgs[i%len(imgs)])
				}
			}()
		}
		wg.Wait()
		fmt.Println("round", round, hwm())
	}
}
