/// UTC timestamps in the form `ISO8601DateFormatter` prints with its default
/// options (`2026-11-24T12:57:04Z`: whole seconds), computed with integer
/// arithmetic instead of an ICU formatter.
///
/// The time is truncated to the second below (toward the past, before 1970 too).
/// `ISO8601DateFormatter` rounds to the millisecond first, so for an instant in
/// the last half millisecond of a second it prints the next second; this prints
/// the second the instant is in.
enum ISO8601Timestamp {
    /// The date and time of `nanoseconds` since 1970-01-01T00:00:00Z, in the
    /// proleptic Gregorian calendar. Total over `Int64` (years 1677 to 2262).
    struct Fields: Equatable {
        var year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64
    }

    static func fields(nanosecondsSince1970 nanoseconds: Int64) -> Fields {
        let seconds = floorDivide(nanoseconds, 1_000_000_000)
        let days = floorDivide(seconds, 86_400)
        let secondOfDay = seconds - days * 86_400
        // Days since 1970-01-01 to a civil date: Howard Hinnant's `civil_from_days`,
        // counting 400-year eras from 0000-03-01 so the leap day ends each year.
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097  // 0...146096
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365  // 0...399
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)  // 0...365, from March 1
        let shiftedMonth = (5 * dayOfYear + 2) / 153  // 0...11, March = 0
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return Fields(year: year, month: month, day: day,
                      hour: secondOfDay / 3600, minute: secondOfDay / 60 % 60, second: secondOfDay % 60)
    }

    /// Integer division rounding toward negative infinity (Swift's `/` rounds toward zero).
    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let quotient = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
    }
}
