// hogshape.cc: see hogshape.h. Every entry point catches C++ exceptions so
// none unwinds into Go.
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/serialize.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "hogshape.h"
#include "kderr.h"

namespace kioskd {

// gray_view lets dlib read a caller's grey buffer in place through dlib's generic
// image interface. Its accessors live in this namespace so that argument-
// dependent lookup finds them from dlib's templates.
struct gray_view {
	const unsigned char* data;
	long nr, nc, stride;
};
inline long num_rows(const gray_view& i) { return i.nr; }
inline long num_columns(const gray_view& i) { return i.nc; }
inline const void* image_data(const gray_view& i) { return i.data; }
inline long width_step(const gray_view& i) { return i.stride; }

}  // namespace kioskd

namespace dlib {
template <>
struct image_traits<kioskd::gray_view> {
	typedef unsigned char pixel_type;
};
}  // namespace dlib

using kioskd::gray_view;

struct kd_detector {
	dlib::frontal_face_detector det;
};

struct kd_shaper {
	dlib::shape_predictor sp;
};

extern "C" {

kd_detector* kd_detector_new(void) {
	try {
		kd_detector* d = new kd_detector;
		d->det = dlib::get_frontal_face_detector();
		return d;
	} catch (...) {
		return nullptr;
	}
}

void kd_detector_free(kd_detector* d) { delete d; }

int kd_detect(kd_detector* d, const unsigned char* gray, int w, int h, int stride,
              double adjust, int* rects, double* scores, int* kinds, int max, char** err) {
	try {
		gray_view img{gray, h, w, stride};
		std::vector<dlib::rect_detection> dets;
		d->det(img, dets, adjust);
		int n = static_cast<int>(dets.size());
		for (int i = 0; i < n && i < max; i++) {
			const dlib::rectangle& r = dets[i].rect;
			rects[4 * i + 0] = static_cast<int>(r.left());
			rects[4 * i + 1] = static_cast<int>(r.top());
			rects[4 * i + 2] = static_cast<int>(r.right());
			rects[4 * i + 3] = static_cast<int>(r.bottom());
			scores[i] = dets[i].detection_confidence;
			kinds[i] = static_cast<int>(dets[i].weight_index);
		}
		return n;
	} catch (const std::exception& e) {
		*err = kd_dup_err(e.what());
		return -1;
	} catch (...) {
		*err = kd_dup_err("unknown dlib error");
		return -1;
	}
}

kd_shaper* kd_shaper_new(const char* path, char** err) {
	try {
		kd_shaper* s = new kd_shaper;
		try {
			dlib::deserialize(path) >> s->sp;
		} catch (...) {
			delete s;
			throw;
		}
		return s;
	} catch (const std::exception& e) {
		*err = kd_dup_err(e.what());
		return nullptr;
	} catch (...) {
		*err = kd_dup_err("unknown dlib error");
		return nullptr;
	}
}

void kd_shaper_free(kd_shaper* s) { delete s; }

int kd_shaper_parts(kd_shaper* s) { return static_cast<int>(s->sp.num_parts()); }

int kd_shape(kd_shaper* s, const unsigned char* gray, int w, int h, int stride,
             int left, int top, int right, int bottom, int* pts, int max, char** err) {
	try {
		gray_view img{gray, h, w, stride};
		dlib::full_object_detection shape = s->sp(img, dlib::rectangle(left, top, right, bottom));
		int n = static_cast<int>(shape.num_parts());
		for (int i = 0; i < n && i < max; i++) {
			pts[2 * i + 0] = static_cast<int>(shape.part(i).x());
			pts[2 * i + 1] = static_cast<int>(shape.part(i).y());
		}
		return n;
	} catch (const std::exception& e) {
		*err = kd_dup_err(e.what());
		return -1;
	} catch (...) {
		*err = kd_dup_err("unknown dlib error");
		return -1;
	}
}

}  // extern "C"
