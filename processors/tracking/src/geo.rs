//! Distances on the Earth between GPS fixes. Coordinates and distances are
//! measurements, not money: floats, with the precision documented in
//! docs/tracking.md (the haversine formula on a sphere of radius 6,371.0088
//! km, the IUGG mean radius: within 0.5 % of the ellipsoid everywhere).

/// The mean Earth radius in metres (IUGG).
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A position in decimal degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

impl Point {
    /// A point on the globe, or why not: finite, latitude within ±90,
    /// longitude within ±180.
    pub fn new(lat: f64, lon: f64) -> Result<Point, String> {
        if !lat.is_finite() || !lon.is_finite() {
            return Err(format!("coordinates ({lat}, {lon}) are not numbers"));
        }
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(format!("coordinates ({lat}, {lon}) are off the globe"));
        }
        Ok(Point { lat, lon })
    }

    /// The great-circle distance in metres (haversine).
    pub fn distance_m(self, other: Point) -> f64 {
        let (phi1, phi2) = (self.lat.to_radians(), other.lat.to_radians());
        let dphi = phi2 - phi1;
        let dlambda = (other.lon - self.lon).to_radians();
        let a = (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        // One degree of latitude: 111.195 km on this sphere.
        let d = Point::new(0.0, 0.0).unwrap().distance_m(Point::new(1.0, 0.0).unwrap());
        assert!((d - 111_195.08).abs() < 1.0, "{d}");
        // Jakarta (Monas) to Bandung (Gedung Sate): about 119 km as the crow flies.
        let jakarta = Point::new(-6.175392, 106.827153).unwrap();
        let bandung = Point::new(-6.902463, 107.618782).unwrap();
        let d = jakarta.distance_m(bandung);
        assert!((118_000.0..120_000.0).contains(&d), "{d}");
        assert_eq!(jakarta.distance_m(jakarta), 0.0);
        // Antipodes: half the circumference, no NaN from rounding.
        let d = Point::new(0.0, 0.0).unwrap().distance_m(Point::new(0.0, 180.0).unwrap());
        assert!((d - std::f64::consts::PI * EARTH_RADIUS_M).abs() < 1.0, "{d}");
    }

    #[test]
    fn impossible_coordinates_are_refused() {
        for (lat, lon) in [(91.0, 0.0), (0.0, -180.5), (f64::NAN, 0.0), (0.0, f64::INFINITY)] {
            assert!(Point::new(lat, lon).is_err(), "({lat}, {lon})");
        }
        assert!(Point::new(-90.0, 180.0).is_ok());
    }
}
