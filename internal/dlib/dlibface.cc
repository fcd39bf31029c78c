// dlib's face pipeline exactly as face_recognition (1.3.0) drives it through
// dlib's Python bindings: frontal HOG detector with optional one-step
// pyramid_up, rectangles mapped back with rect_down, 5-point shape predictor
// and ResNet descriptor on the original image, 150 px chips, padding 0.25,
// no jitter.
#include <cstdlib>
#include <cstring>
#include <string>
#include <dlib/dnn.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/image_transforms.h>
#include "dlibface.h"
#include "kderr.h"
#include "hogdetect.h"

using namespace dlib;

// The ResNet of dlib_face_recognition_resnet_model_v1 (dlib's
// dnn_face_recognition_ex.cpp).
template <template <int,template<typename>class,int,typename> class block, int N, template<typename>class BN, typename SUBNET>
using residual = add_prev1<block<N,BN,1,tag1<SUBNET>>>;
template <template <int,template<typename>class,int,typename> class block, int N, template<typename>class BN, typename SUBNET>
using residual_down = add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,BN,2,tag1<SUBNET>>>>>>;
template <int N, template <typename> class BN, int stride, typename SUBNET>
using block  = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>;
template <int N, typename SUBNET> using ares      = relu<residual<block,N,affine,SUBNET>>;
template <int N, typename SUBNET> using ares_down = relu<residual_down<block,N,affine,SUBNET>>;
template <typename SUBNET> using alevel0 = ares_down<256,SUBNET>;
template <typename SUBNET> using alevel1 = ares<256,ares<256,ares_down<256,SUBNET>>>;
template <typename SUBNET> using alevel2 = ares<128,ares<128,ares_down<128,SUBNET>>>;
template <typename SUBNET> using alevel3 = ares<64,ares<64,ares<64,ares_down<64,SUBNET>>>>;
template <typename SUBNET> using alevel4 = ares<32,ares<32,ares<32,SUBNET>>>;
using anet_type = loss_metric<fc_no_bias<128,avg_pool_everything<
                            alevel0<alevel1<alevel2<alevel3<alevel4<
                            max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,
                            input_rgb_image_sized<150>
                            >>>>>>>>>>>>;

struct kd_facerec {
	frontal_face_detector detector;
	shape_predictor sp;
	anet_type net;
};

extern "C" kd_facerec* kd_open(const char* dir, char** err) {
	kd_facerec* rec = nullptr;
	try {
		rec = new kd_facerec;
		rec->detector = get_frontal_face_detector();
		std::string d = dir;
		deserialize(d + "/shape_predictor_5_face_landmarks.dat") >> rec->sp;
		deserialize(d + "/dlib_face_recognition_resnet_model_v1.dat") >> rec->net;
		return rec;
	} catch (std::exception& e) {
		delete rec;
		*err = kd_dup_err(e.what());
		return nullptr;
	}
}

extern "C" void kd_close(kd_facerec* rec) { delete rec; }

// bgr_to_rgb copies packed BGR pixels into a dlib RGB image.
static void bgr_to_rgb(const uint8_t* bgr, int w, int h, matrix<rgb_pixel>& img) {
	img.set_size(h, w);
	for (int y = 0; y < h; y++) {
		const uint8_t* row = bgr + (size_t)y * w * 3;
		for (int x = 0; x < w; x++) {
			img(y, x) = rgb_pixel(row[3*x+2], row[3*x+1], row[3*x]);
		}
	}
}

// describe runs the 5-point shape predictor on det and the ResNet on the
// aligned 150 px chip (padding 0.25), as face_recognition's face_encodings
// does, filling shape (10 longs) and descr (128 floats).
static void describe(kd_facerec* rec, const matrix<rgb_pixel>& img, const rectangle& det, long* shape, float* descr) {
	full_object_detection sh = rec->sp(img, det);
	matrix<rgb_pixel> chip;
	extract_image_chip(img, get_face_chip_details(sh, 150, 0.25), chip);
	matrix<float,0,1> d = rec->net(chip);
	for (int j = 0; j < 5 && j < (int)sh.num_parts(); j++) {
		shape[2*j] = sh.part(j).x();
		shape[2*j+1] = sh.part(j).y();
	}
	std::memcpy(descr, &d(0), 128 * sizeof(float));
}

extern "C" int kd_encode_face(kd_facerec* rec, const uint8_t* bgr, int w, int h, long left, long top,
                              long right, long bottom, long* shape, float* descr, char** err) {
	try {
		matrix<rgb_pixel> img;
		bgr_to_rgb(bgr, w, h, img);
		describe(rec, img, rectangle(left, top, right, bottom), shape, descr);
		return 1;
	} catch (std::exception& e) {
		*err = kd_dup_err(e.what());
		return -1;
	}
}

extern "C" int kd_recognize(kd_facerec* rec, const uint8_t* bgr, int w, int h, int upsample,
                            int detect_threads, int max_faces, long* rects, long* shapes, float* descrs, char** err) {
	try {
		matrix<rgb_pixel> img;
		bgr_to_rgb(bgr, w, h, img);
		// One thread: dlib's own detector call. More: kd::parallel_detect,
		// which returns the very same detections (hogdetect.h).
		auto detect = [&](const matrix<rgb_pixel>& m, std::vector<rect_detection>& found) {
			if (detect_threads > 1)
				kd::parallel_detect(rec->detector, m, found, 0.0, detect_threads);
			else
				rec->detector(m, found, 0.0);
		};
		std::vector<rectangle> dets;
		if (upsample > 0) {
			pyramid_down<2> pyr;
			matrix<rgb_pixel> up;
			pyramid_up(img, up, pyr);
			std::vector<rect_detection> found;
			detect(up, found);
			for (auto& d : found) dets.push_back(pyr.rect_down(d.rect, 1));
		} else {
			std::vector<rect_detection> found;
			detect(img, found);
			for (auto& d : found) dets.push_back(d.rect);
		}
		int n = (int)dets.size();
		for (int i = 0; i < n && i < max_faces; i++) {
			describe(rec, img, dets[i], shapes + 10*i, descrs + 128*i);
			rects[4*i] = dets[i].left();
			rects[4*i+1] = dets[i].top();
			rects[4*i+2] = dets[i].right();
			rects[4*i+3] = dets[i].bottom();
		}
		return n;
	} catch (std::exception& e) {
		*err = kd_dup_err(e.what());
		return -1;
	}
}
