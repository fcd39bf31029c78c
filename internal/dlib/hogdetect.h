// A multi-threaded replica of dlib's object_detector<scan_fhog_pyramid<...>>
// operator()(img, std::vector<rect_detection>&, adjust_threshold), giving
// the very same detections, in the same order, as the single-threaded call.
//
// Why not just split the detector's filters across threads: building the
// HOG pyramid (scanner.load) is about two thirds of the detector's time on a
// 2x copy of a 640x480 image, and each thread would have to build its own.
// So this replica splits the work by pyramid level: the pyramid_down chain
// is sequential (each level is made from the previous one), but each
// level's FHOG extraction and its filtering (impl::apply_filters_to_fhog
// with every filter, followed by the same threshold scan as
// impl::detect_from_fhog_pyramid) are independent of the other levels. A
// task per level makes the next level, then extracts and filters its own,
// then frees its image and features; so memory holds a level or two per
// thread, not the whole pyramid and all its features as dlib's scanner does
// (what bounds the encoder's peak memory on large photos).
// Results are then merged exactly as dlib merges them: per filter, the
// levels' candidates concatenated in level order and sorted with the same
// (unstable, but deterministic for identical input) std::sort call; the
// filters' rect_detections concatenated in filter order, sorted, and
// pruned with the detector's overlap tester. Every float is computed by the
// same dlib code on the same inputs, so nothing depends on the thread count.
//
// The copied parts follow dlib 19.24's object_detector.h and
// scan_fhog_pyramid.h (create_fhog_pyramid, detect_from_fhog_pyramid,
// object_detector::operator()); they only use public members.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include <dlib/image_processing/frontal_face_detector.h>

namespace kd {

// run_workers runs fn(0) on the calling thread and fn(1..n-1) on new
// threads, joins them, and rethrows the first exception any of them threw.
// fn must not depend on every worker starting: if a thread cannot be
// created, the others do its share.
template <typename F>
void run_workers(int n, F fn) {
	std::mutex mu;
	std::exception_ptr first;
	auto guarded = [&](int k) {
		try {
			fn(k);
		} catch (...) {
			std::lock_guard<std::mutex> lk(mu);
			if (!first)
				first = std::current_exception();
		}
	};
	std::vector<std::thread> pool;
	for (int k = 1; k < n; ++k) {
		try {
			pool.emplace_back(guarded, k);
		} catch (...) {
			break;  // fewer threads; the shared task counters still cover everything
		}
	}
	guarded(0);
	for (auto& t : pool)
		t.join();
	if (first)
		std::rethrow_exception(first);
}

template <typename detector_type, typename image_type>
void parallel_detect(const detector_type& det, const image_type& img,
                     std::vector<dlib::rect_detection>& final_dets,
                     double adjust_threshold, int threads) {
	using namespace dlib;
	typedef typename detector_type::image_scanner_type scanner_type;
	typedef typename scanner_type::pyramid_type pyramid_type;
	typedef typename image_traits<image_type>::pixel_type pixel_type;
	typedef array<array2d<float> > fhog_image;

	const scanner_type& sc = det.get_scanner();
	const auto& fe = sc.get_feature_extractor();
	const int cell_size = sc.get_cell_size();
	// scan_fhog_pyramid::compute_fhog_window_size (private) is what
	// get_fhog_window_width/height return.
	const unsigned long width = sc.get_fhog_window_width();
	const unsigned long height = sc.get_fhog_window_height();
	const unsigned long padding = sc.get_padding();

	// create_fhog_pyramid: the number of levels, from rectangles.
	unsigned long levels = 0;
	{
		rectangle rect = get_rect(img);
		pyramid_type pyr;
		do {
			rect = pyr.rect_down(rect);
			++levels;
		} while (rect.width() >= sc.get_min_pyramid_layer_width() &&
		         rect.height() >= sc.get_min_pyramid_layer_height() &&
		         levels < sc.get_max_pyramid_levels());
	}

	std::vector<array2d<pixel_type> > pyramid(levels);  // [0] unused: level 0 is img
	threads = std::max(1, std::min(threads, 8));

	const unsigned long nfilters = det.num_detectors();
	const long num_dims = sc.get_num_dimensions();
	std::vector<double> thresh(nfilters);
	for (unsigned long i = 0; i < nfilters; ++i)
		thresh[i] = det.get_w(i)(num_dims);
	// candidates[i*levels + l]: filter i's hits on level l, in scan order.
	std::vector<std::vector<std::pair<double, rectangle> > > candidates(nfilters * levels);

	// --- one task per level: make the next level, extract, filter, free ----
	// Task l waits for level l's image, makes level l+1 from it (the chain
	// is sequential, and making a level is cheaper than extracting one, so
	// the next task is rarely kept waiting), extracts level l's FHOG
	// features, applies every filter to them, and frees the level's image
	// and features. So at most one or two levels' images and features are
	// alive per worker, instead of every level's features at once (the
	// memory saved: docs/benchmarks.md).
	{
		std::mutex mu;
		std::condition_variable cv;
		unsigned long made = 1;                  // levels whose image exists (level 0 is img)
		bool chain_failed = false;               // a level could not be made: stop waiting
		std::atomic<unsigned long> next_task{0};
		const unsigned long det_box_height = height - 2 * padding;
		const unsigned long det_box_width = width - 2 * padding;
		auto work = [&]() {
			fhog_image feats;
			array2d<float> saliency_image;
			pyramid_type pyr;
			for (;;) {
				const unsigned long l = next_task.fetch_add(1);
				if (l >= levels)
					return;
				if (l > 0) {
					std::unique_lock<std::mutex> lk(mu);
					cv.wait(lk, [&] { return made > l || chain_failed; });
					if (chain_failed)
						return;
				}
				if (l + 1 < levels) {
					try {
						if (l == 0)
							pyr(img, pyramid[1]);
						else
							pyr(pyramid[l], pyramid[l + 1]);
					} catch (...) {
						{
							std::lock_guard<std::mutex> lk(mu);
							chain_failed = true;
						}
						cv.notify_all();
						throw;
					}
					{
						std::lock_guard<std::mutex> lk(mu);
						made = l + 2;
					}
					cv.notify_all();
				}
				if (l == 0)
					fe(img, feats, cell_size, height, width);
				else
					fe(pyramid[l], feats, cell_size, height, width);
				if (l > 0)
					pyramid[l].clear();  // level l+1 is made and l is extracted
				for (unsigned long i = 0; i < nfilters; ++i) {
					const double t = thresh[i] + adjust_threshold;
					auto& dets = candidates[i * levels + l];
					const rectangle area = impl::apply_filters_to_fhog(
					    det.get_processed_w(i).get_detect_argument(), feats, saliency_image);
					for (long r = area.top(); r <= area.bottom(); ++r) {
						for (long c = area.left(); c <= area.right(); ++c) {
							if (saliency_image[r][c] >= t) {
								rectangle rect = fe.feats_to_image(
								    centered_rect(point(c, r), det_box_width, det_box_height),
								    cell_size, height, width);
								rect = pyr.rect_up(rect, l);
								dets.push_back(std::make_pair(saliency_image[r][c], rect));
							}
						}
					}
				}
				feats.clear();
			}
		};
		run_workers(threads, [&](int) { work(); });
	}

	// --- merge, exactly as object_detector::operator() ------------------------
	std::vector<std::pair<double, rectangle> > dets;
	std::vector<rect_detection> dets_accum;
	for (unsigned long i = 0; i < nfilters; ++i) {
		dets.clear();
		for (unsigned long l = 0; l < levels; ++l) {
			const auto& c = candidates[i * levels + l];
			dets.insert(dets.end(), c.begin(), c.end());
		}
		std::sort(dets.rbegin(), dets.rend(), impl::compare_pair_rect);
		for (unsigned long j = 0; j < dets.size(); ++j) {
			rect_detection temp;
			temp.detection_confidence = dets[j].first - thresh[i];
			temp.weight_index = i;
			temp.rect = dets[j].second;
			dets_accum.push_back(temp);
		}
	}
	final_dets.clear();
	if (nfilters > 1)
		std::sort(dets_accum.rbegin(), dets_accum.rend());
	const test_box_overlap& boxes_overlap = det.get_overlap_tester();
	for (unsigned long i = 0; i < dets_accum.size(); ++i) {
		bool overlaps = false;
		for (unsigned long k = 0; k < final_dets.size(); ++k) {
			if (boxes_overlap(final_dets[k].rect, dets_accum[i].rect)) {
				overlaps = true;
				break;
			}
		}
		if (overlaps)
			continue;
		final_dets.push_back(dets_accum[i]);
	}
}

}  // namespace kd
